//! The library's error type. Every variant renders as one line that names the operation and the
//! object and, where there is one, the fix; the binary prints it as is.

use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum Error {
    /// The config file is missing, unreadable or malformed.
    #[error("config: {0}")]
    Config(String),

    /// The config names something the database does not have.
    #[error("{0}")]
    Schema(String),

    /// No database URL was given anywhere.
    #[error("no database configured: pass --database-url, or set CLOCKWATCH_DATABASE_URL or DATABASE_URL")]
    NoDatabase,

    /// The database URL could not be parsed.
    #[error("database url: {0}")]
    DatabaseUrl(String),

    /// Could not reach the database, or lost it (refused, unknown host, timed out, dropped).
    /// Retrying may succeed.
    #[error("cannot connect to the database: {0}")]
    Connect(String),

    /// The server refused this connection for a reason retrying will not change (bad password,
    /// unknown role or database, not allowed by pg_hba.conf).
    #[error("cannot connect to the database: {0}")]
    ConnectRefused(String),

    /// A migration already applied differs from the one in this binary.
    #[error("migration {version} ({name}) was applied with a different checksum: the installed schema does not match this clockwatch version")]
    MigrationChanged { version: i32, name: String },

    /// Clockwatch's schema is not there: install has not run.
    #[error("clockwatch is not installed in schema \"{0}\": run `clockwatch install` first")]
    NotInstalled(String),

    /// The reader of our output went away (`| head`): not an error worth a message.
    #[error("output closed")]
    BrokenPipe,

    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(String),

    /// Every connection the server may hold is in use: try again shortly.
    #[error("{0}")]
    Busy(String),

    /// A value given on the command line is not acceptable.
    #[error("{0}")]
    Input(String),

    /// An error met on the log's own database (`log_database_url`), said as such: the host's
    /// database and the log's may have different servers, roles and grants.
    #[error("log database (log_database_url): {0}")]
    LogDatabase(Box<Error>),

    /// Any other database error, with the operation it happened in.
    #[error("{context}: {message}")]
    Db {
        context: String,
        message: String,
        /// Whether the same operation may succeed later (connection lost, server restarting).
        transient: bool,
        /// The SQLSTATE, when the server sent one.
        code: Option<String>,
    },
}

impl Error {
    /// Whether retrying later may succeed (the database went away), as opposed to an error that
    /// will repeat until someone changes the configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect(_) => true,
            Error::Db { transient, .. } => *transient,
            Error::LogDatabase(e) => e.is_transient(),
            _ => false,
        }
    }

    /// The SQLSTATE of a database error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Db { code, .. } => code.as_deref(),
            Error::LogDatabase(e) => e.code(),
            _ => None,
        }
    }

    /// This error, said to have happened on the log's own database. (Errors that already say
    /// which database they concern, or that only the config causes, pass unchanged.)
    pub fn on_log_database(self) -> Error {
        match self {
            Error::LogDatabase(_) | Error::Config(_) | Error::BrokenPipe | Error::Output(_) => self,
            e => Error::LogDatabase(Box::new(e)),
        }
    }

    /// Whether the server refused the statement for the data it carried (class 22, data
    /// exception; class 54, a limit exceeded): the same data would be refused again.
    pub fn is_data_error(&self) -> bool {
        matches!(self, Error::Db { code: Some(code), .. } if code.starts_with("22") || code.starts_with("54"))
    }
}

/// Attach the operation's name to a database error.
pub trait DbContext<T> {
    fn context(self, context: impl Into<String>) -> Result<T>;
}

impl<T> DbContext<T> for std::result::Result<T, tokio_postgres::Error> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::db(context, &source))
    }
}

impl Error {
    /// A database error met while doing `context`.
    pub fn db(context: impl Into<String>, source: &tokio_postgres::Error) -> Error {
        Error::Db {
            context: context.into(),
            message: crate::db::describe(source),
            transient: crate::db::is_transient(source),
            code: source.code().map(|c| c.code().to_string()),
        }
    }
}
