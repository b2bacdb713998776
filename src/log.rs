//! The host's log: levels and the hook an engine writes its lines to
//! (named's logging channels, Knot's log, stderr for the front).

/// Log levels passed to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum LogLevel {
    /// Failures.
    Error = 1,
    /// Problems that change nothing yet.
    Warn = 2,
    /// Life-cycle events.
    Info = 3,
    /// Details.
    Debug = 4,
}

/// A host log hook.
pub type LogFn = Box<dyn Fn(LogLevel, &str) + Send + Sync>;
