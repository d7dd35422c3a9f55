//! The SQLite database `data/dncs.db`, the only state the CGI and `dncs-sync` share: its schema and
//! migrations, and typed reads and writes in which every secret is sealed and opened inside, so no
//! caller can store a password or token in plaintext.
//!
//! Both processes may write at the same moment, so the connection runs in WAL mode with a busy
//! timeout and every write is one short `BEGIN IMMEDIATE` transaction (an immediate transaction
//! waits for the write lock up front instead of failing when a read would upgrade to a write).
//! Times are passed in by the caller (tests pin them) and kept as whole UNIX seconds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::config::DbConfig;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

use crate::secret::{SecretError, SecretKey};

/// Declares a closed set of values kept in a TEXT column, with its database spelling.
macro_rules! db_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// The spelling kept in the database (and used in forms).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value spelled `text`, if there is one.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::parse(text).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(
                        format!("unknown {} {text:?}", stringify!($name)).into(),
                    )
                })
            }
        }
    };
}

mod cursors;
mod history;
mod legacy_links;
mod mappings;
mod oauth_flows;
mod owner;
mod schema;
mod secrets;
mod sessions;
mod settings;
mod sync_requests;
mod throttle;
mod users;

pub use cursors::Side;
pub use history::{HistoryEntry, HistoryPage, PassCounts};
pub use legacy_links::LegacyLink;
pub use mappings::Mapping;
pub use oauth_flows::OAuthFlow;
pub use owner::{check_data_folder_owner, web_server_account, ForeignOwner};
pub use schema::SCHEMA_VERSION;
pub use secrets::ForgottenSecrets;
pub use sessions::{NewSession, Session};
pub use settings::{
    SETTING_ADMIN_PASSWORD_HASH, SETTING_INSTALL_ID, SETTING_LAST_SCHEDULED_RUN,
    SETTING_OAUTH_STATE_KEY,
};
pub use sync_requests::SyncRequest;
pub use users::{AccessToken, GoogleClient, GoogleLink, Provenance, Target, User};

/// A Cybozu Office user id; users are keyed by it.
pub type UserId = i64;

const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data folder {path}: {source}")]
    DataFolder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database error while {doing}: {source}")]
    Sqlite {
        doing: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the database is at schema version {found}, newer than this program knows ({known}); \
         install the dncs version that wrote it, or restore a backup of the database"
    )]
    TooNew { found: i64, known: i64 },
    #[error("the database holds data this program cannot read while {doing}: {detail}")]
    Corrupt { doing: &'static str, detail: String },
    #[error("the stored {what} cannot be opened: {source}")]
    Secret {
        what: String,
        #[source]
        source: SecretError,
    },
    #[error(transparent)]
    Random(SecretError),
    #[error("there is no user with id {0}")]
    NoSuchUser(UserId),
    #[error("the browser session has ended")]
    NoSuchSession,
    #[error(
        "remote event {remote_id:?} of user {user_id} is already mapped to another Cybozu event"
    )]
    RemoteIdTaken { user_id: UserId, remote_id: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database file inside a data folder.
pub const DATABASE_FILE: &str = "dncs.db";
/// The key that seals the stored secrets, beside the database.
pub const KEY_FILE: &str = "secret.key";

/// Opens a data folder's database with the folder's key, creating both when missing; the
/// message names the file that failed.
///
/// A key file is created only beside a database that holds no secrets yet. A missing key next
/// to sealed passwords and tokens was lost (a partial restore, a copy of `dncs.db` alone): a new
/// one could open none of them, while every page would still show the links as made, so the
/// administrator is told to restore it, or to start the secrets over with `dncs-sync new-key`.
pub fn open_data_folder(data_dir: &Path) -> std::result::Result<Store, String> {
    let key_path = data_dir.join(KEY_FILE);
    let db_path = data_dir.join(DATABASE_FILE);
    let opened =
        |key| Store::open(&db_path, key).map_err(|e| format!("{}: {e}", db_path.display()));
    let key_error = |e: SecretError| format!("{}: {e}", key_path.display());
    if let Some(key) = SecretKey::load(&key_path).map_err(key_error)? {
        return opened(key);
    }
    if db_path.exists() {
        let store = opened(SecretKey::generate().map_err(key_error)?)?;
        if store
            .holds_secrets()
            .map_err(|e| format!("{}: {e}", db_path.display()))?
        {
            return Err(format!(
                "{}: {}",
                key_path.display(),
                MissingKey {
                    database: db_path.clone()
                }
            ));
        }
    }
    opened(SecretKey::load_or_create(&key_path).map_err(key_error)?)
}

/// The message of a key file missing beside sealed secrets.
#[derive(Debug, thiserror::Error)]
#[error(
    "the secret key file is missing, but {database} holds passwords and Google links sealed with \
     it. Restore secret.key from the backup of the data folder it came with. If it is lost for \
     good, run `dncs-sync new-key` (as the web server's account): it removes the stored secrets \
     and makes a new key; users then log in again, press 認証 again and enter their CalDAV \
     password again, and keep their settings and sync information"
)]
struct MissingKey {
    database: PathBuf,
}

/// Starts the stored secrets over when the key they were sealed with is lost (`dncs-sync
/// new-key`): removes every sealed value, then puts a new key file in place; an existing key
/// file is kept beside it as `secret.key.replaced-YYYYMMDDHHMMSS`. The secrets go first: a
/// failure between the steps leaves a database without secrets, for which any key will do.
pub fn replace_data_folder_key(
    data_dir: &Path,
    now: DateTime<Utc>,
) -> std::result::Result<(ForgottenSecrets, Option<PathBuf>), String> {
    let key_path = data_dir.join(KEY_FILE);
    let db_path = data_dir.join(DATABASE_FILE);
    let throwaway = SecretKey::generate().map_err(|e| e.to_string())?;
    let store =
        Store::open(&db_path, throwaway).map_err(|e| format!("{}: {e}", db_path.display()))?;
    let forgotten = store
        .forget_secrets(now)
        .map_err(|e| format!("{}: {e}", db_path.display()))?;
    drop(store);
    let kept = if key_path.exists() {
        let aside = data_dir.join(format!(
            "{KEY_FILE}.replaced-{}",
            now.format("%Y%m%d%H%M%S")
        ));
        std::fs::rename(&key_path, &aside)
            .map_err(|e| format!("cannot move {} aside: {e}", key_path.display()))?;
        Some(aside)
    } else {
        None
    };
    SecretKey::load_or_create(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
    Ok((forgotten, kept))
}

/// What a transaction body can fail with: SQLite errors get their context from the transaction
/// helper, so bodies can use `?` on both kinds.
enum Failure {
    Sqlite(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Failure {
        Failure::Sqlite(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        Failure::Store(error)
    }
}

impl Failure {
    fn doing(self, doing: &'static str) -> StoreError {
        match self {
            Failure::Sqlite(source) => sqlite_error(doing, source),
            Failure::Store(error) => error,
        }
    }
}

/// Values that do not decode (a wrong type, an unknown enum spelling, an impossible time) mean
/// the file holds something this program did not write, which is worth telling apart from I/O.
fn sqlite_error(doing: &'static str, source: rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    match source {
        E::FromSqlConversionFailure(..)
        | E::InvalidColumnType(..)
        | E::IntegralValueOutOfRange(..)
        | E::Utf8Error(..) => StoreError::Corrupt {
            doing,
            detail: source.to_string(),
        },
        source => StoreError::Sqlite { doing, source },
    }
}

trait Doing<T> {
    fn doing(self, doing: &'static str) -> Result<T>;
}

impl<T> Doing<T> for rusqlite::Result<T> {
    fn doing(self, doing: &'static str) -> Result<T> {
        self.map_err(|source| sqlite_error(doing, source))
    }
}

/// The extended result code of a constraint violation, to tell which constraint failed.
fn constraint_violation(failure: &Failure) -> Option<std::ffi::c_int> {
    match failure {
        Failure::Sqlite(rusqlite::Error::SqliteFailure(error, _))
            if error.code == ErrorCode::ConstraintViolation =>
        {
            Some(error.extended_code)
        }
        _ => None,
    }
}

/// A time read from an INTEGER column of UNIX seconds.
struct UnixTime(DateTime<Utc>);

impl FromSql for UnixTime {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let seconds = i64::column_result(value)?;
        DateTime::from_timestamp(seconds, 0)
            .map(UnixTime)
            .ok_or(FromSqlError::OutOfRange(seconds))
    }
}

fn unix(time: DateTime<Utc>) -> i64 {
    time.timestamp()
}

/// `now - span` in UNIX seconds; a span from configuration reaching past chrono's range means
/// "since forever" rather than the panic that `DateTime - Duration` would give.
fn unix_before(now: DateTime<Utc>, span: chrono::Duration) -> i64 {
    now.checked_sub_signed(span).map_or(i64::MIN, unix)
}

fn read_time(
    row: &rusqlite::Row<'_>,
    column: impl rusqlite::RowIndex,
) -> rusqlite::Result<DateTime<Utc>> {
    Ok(row.get::<_, UnixTime>(column)?.0)
}

fn read_optional_time(
    row: &rusqlite::Row<'_>,
    column: impl rusqlite::RowIndex,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    Ok(row.get::<_, Option<UnixTime>>(column)?.map(|t| t.0))
}

/// An open database with the key that seals its secrets.
pub struct Store {
    conn: Connection,
    key: SecretKey,
    /// Set by [`Store::keep_wal_on_close`] until the first write.
    keeps_wal: std::cell::Cell<bool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.conn.path())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path, key: SecretKey) -> Result<Store> {
        // One look instead of mkdir's EEXIST and a look: the folder is there on every request.
        if let Some(folder) = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty() && !p.is_dir())
        {
            std::fs::create_dir_all(folder).map_err(|source| StoreError::DataFolder {
                path: folder.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).doing("opening the database")?;
        Store::configure(conn, key, true)
    }

    /// The same database under another key, as a process with another key file sees it.
    #[cfg(test)]
    pub(crate) fn with_key_for_tests(self, key: SecretKey) -> Store {
        Store { key, ..self }
    }

    /// A private database in memory (tests and throwaway tools).
    pub fn open_in_memory(key: SecretKey) -> Result<Store> {
        let conn = Connection::open_in_memory().doing("opening an in-memory database")?;
        Store::configure(conn, key, false)
    }

    fn configure(conn: Connection, key: SecretKey, wal: bool) -> Result<Store> {
        conn.busy_timeout(BUSY_TIMEOUT)
            .doing("setting the busy timeout")?;
        if wal {
            use_wal(&conn)?;
        }
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
            .doing("configuring the connection")?;
        schema::migrate(&conn, schema::SCHEMA_VERSION)?;
        Ok(Store {
            conn,
            key,
            keeps_wal: std::cell::Cell::new(false),
        })
    }

    /// Leaves the `-wal` and `-shm` files in place when this connection closes without having
    /// written, even as the last one, instead of checkpointing and removing them.
    ///
    /// For the CGI: a process per request would otherwise create, size and delete both files on
    /// every page view. A connection that writes closes as usual (checkpoint, files removed when
    /// it is the last), so the WAL a reader leaves behind stays empty: every process opening the
    /// database alone replays the whole WAL into a fresh `-shm`, which must stay cheap.
    pub fn keep_wal_on_close(&self) -> Result<()> {
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .doing("keeping the WAL file on close")?;
        self.keeps_wal.set(true);
        Ok(())
    }

    /// Whether [`Store::keep_wal_on_close`] is in force, this connection has changed no row and no
    /// transaction is open: closing it would leave the files on disk as they are.
    pub fn has_only_read(&self) -> bool {
        self.keeps_wal.get() && self.conn.total_changes() == 0 && self.conn.is_autocommit()
    }

    /// Closes the connection; the last connection to close checkpoints and removes the WAL file.
    pub fn close(self) -> Result<()> {
        self.conn
            .close()
            .map_err(|(_, source)| sqlite_error("closing the database", source))
    }

    /// The schema version the database is at (always [`SCHEMA_VERSION`] once opened).
    pub fn schema_version(&self) -> Result<i64> {
        schema::user_version(&self.conn)
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction, committed when it returns `Ok`.
    fn write<T>(
        &self,
        doing: &'static str,
        body: impl FnOnce(&Transaction<'_>) -> Result<T, Failure>,
    ) -> Result<T> {
        if self.keeps_wal.replace(false) {
            self.conn
                .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)
                .doing("checkpointing the WAL file on close again")?;
        }
        self.transaction(TransactionBehavior::Immediate, doing, body)
    }

    /// Runs `body`, a single statement, outside an explicit transaction: one statement reads
    /// one snapshot by itself, and a page view then spends no `BEGIN` and `COMMIT` on each read.
    fn read<T>(
        &self,
        doing: &'static str,
        body: impl FnOnce(&Connection) -> Result<T, Failure>,
    ) -> Result<T> {
        body(&self.conn).map_err(|f| f.doing(doing))
    }

    /// Runs `body` in one read transaction, so that its several statements see one snapshot.
    fn read_snapshot<T>(
        &self,
        doing: &'static str,
        body: impl FnOnce(&Transaction<'_>) -> Result<T, Failure>,
    ) -> Result<T> {
        self.transaction(TransactionBehavior::Deferred, doing, body)
    }

    fn transaction<T>(
        &self,
        behavior: TransactionBehavior,
        doing: &'static str,
        body: impl FnOnce(&Transaction<'_>) -> Result<T, Failure>,
    ) -> Result<T> {
        // `new_unchecked` lets every call take `&self`; these helpers never nest, and SQLite
        // itself refuses a nested BEGIN with an error rather than misbehaving.
        let tx = Transaction::new_unchecked(&self.conn, behavior).doing(doing)?;
        let value = body(&tx).map_err(|f| f.doing(doing))?;
        tx.commit().doing(doing)?;
        Ok(value)
    }

    fn seal(&self, column: &str, row: impl std::fmt::Display, plaintext: &str) -> String {
        self.key.seal(&format!("{column}:{row}"), plaintext)
    }

    fn open_sealed(
        &self,
        column: &str,
        row: impl std::fmt::Display,
        sealed: &str,
    ) -> Result<String> {
        let context = format!("{column}:{row}");
        self.key
            .open(&context, sealed)
            .map_err(|source| StoreError::Secret {
                what: context,
                source,
            })
    }
}

/// Switches a file database to WAL (a setting kept in the file, so usually already done).
///
/// The switch needs the database to itself and SQLite answers `SQLITE_BUSY` at once instead of
/// calling the busy handler, so processes creating the database together retry here.
fn use_wal(conn: &Connection) -> Result<()> {
    const DOING: &str = "switching the database to WAL mode";
    let journal_mode = |sql| conn.query_row(sql, [], |row| row.get::<_, String>(0));
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        let current = journal_mode("PRAGMA journal_mode").doing(DOING)?;
        if current.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        match journal_mode("PRAGMA journal_mode = WAL") {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                // A file system without shared memory (some network shares) refuses WAL; SQLite
                // keeps working with its rollback journal, only with more waiting between processes.
                log::warn!("the database stays in {mode} journal mode instead of WAL");
                return Ok(());
            }
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(sqlite_error(DOING, e)),
        }
    }
}

/// Maps "no row changed" on a user's row to [`StoreError::NoSuchUser`].
fn require_user(changed: usize, user_id: UserId) -> Result<(), Failure> {
    if changed == 0 {
        Err(StoreError::NoSuchUser(user_id).into())
    } else {
        Ok(())
    }
}

/// Maps a foreign-key failure on a row that belongs to a user to [`StoreError::NoSuchUser`].
fn user_must_exist(failure: Failure, user_id: UserId) -> Failure {
    if constraint_violation(&failure) == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) {
        StoreError::NoSuchUser(user_id).into()
    } else {
        failure
    }
}

#[cfg(test)]
mod tests;
