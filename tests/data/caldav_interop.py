"""Another CalDAV client (the python `caldav` library) for tests/caldav_client.rs.

usage: caldav_interop.py list|change CALENDAR_URL USER PASSWORD [args]

  list                      prints the calendar's events as JSON: uid, summary, dtstart, dtend
                            (UTC "YYYY-MM-DDTHH:MM:SSZ", or "YYYY-MM-DD" for a date)
  change NEW EDIT_FROM EDIT_TO DELETE
                            creates an event titled NEW (2026-11-27 13:00-14:00 UTC), renames the
                            event titled EDIT_FROM to EDIT_TO and deletes the one titled DELETE
"""

import datetime
import json
import sys

import caldav


def when(prop):
    if prop is None:
        return None
    value = prop.dt
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return value.strftime("%Y-%m-%dT%H:%M:%S")
        return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def main():
    command, url, user, password = sys.argv[1:5]
    with caldav.DAVClient(url=url, username=user, password=password) as client:
        calendar = client.calendar(url=url)
        events = calendar.events()
        if command == "list":
            out = []
            for event in events:
                vevent = event.icalendar_component
                out.append(
                    {
                        "uid": str(vevent.get("uid")),
                        "summary": str(vevent.get("summary")),
                        "dtstart": when(vevent.get("dtstart")),
                        "dtend": when(vevent.get("dtend")),
                    }
                )
            print(json.dumps(out, ensure_ascii=False))
        elif command == "change":
            new, edit_from, edit_to, delete = sys.argv[5:9]
            by_summary = {str(e.icalendar_component.get("summary")): e for e in events}
            calendar.save_event(
                dtstart=datetime.datetime(2026, 11, 27, 13, 0, tzinfo=datetime.timezone.utc),
                dtend=datetime.datetime(2026, 11, 27, 14, 0, tzinfo=datetime.timezone.utc),
                uid="python-caldav-1",
                summary=new,
            )
            edited = by_summary[edit_from]
            edited.icalendar_component["summary"] = edit_to
            edited.save()
            by_summary[delete].delete()
            print("changed")
        else:
            raise SystemExit("unknown command " + command)


if __name__ == "__main__":
    main()
