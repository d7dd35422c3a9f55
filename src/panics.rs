//! Reading a caught panic: `catch_unwind` hands back an opaque payload, and the sync run and the
//! simulators both report its message when it has one.

use std::any::Any;

/// The message of a panic whose payload is a `&str` or a `String` (what `panic!` makes);
/// `None` for any other payload (`panic_any`).
pub fn message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::message;

    #[test]
    fn a_literal_and_a_formatted_message_are_read_and_other_payloads_are_not() {
        let literal = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(message(&*literal), Some("plain"));
        let n = 7;
        let formatted = std::panic::catch_unwind(|| panic!("index {n}")).unwrap_err();
        assert_eq!(message(&*formatted), Some("index 7"));
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(message(&*other), None);
    }
}
