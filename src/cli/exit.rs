//! The exit codes every command shares, so that a script reads them the same way whatever it
//! ran, and the two errors that choose a code other than 1.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done; for a file command, every row was used |
//! | 1 | the command ran and something was refused or invalid (each refused row named by its line), or the node refused the call |
//! | 2 | the file cannot be used, and nothing was sent or written; or the command line is wrong |
//! | 3 | the node could not be reached, or went away during the command; what it took before stays taken |

use std::process::ExitCode;

/// The table as `hancha --help` shows it.
pub const TABLE: &str = "Exit codes (every command):
  0  done; for a file command (sweep, registry import) every row was used
  1  something was refused or invalid (each refused row named by its line), or the node refused the call
  2  the file cannot be used and nothing was sent or written; or the command line is wrong
  3  the node could not be reached or went away; what it took stays taken: run the same command again";

/// What a command's exit code says (see the module's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Done = 0,
    Refused = 1,
    Unusable = 2,
    NodeUnavailable = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// A file that cannot be used at all: the command exits with [`Exit::Unusable`], having sent
/// and written nothing.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnusableFile(pub String);

/// The node could not be reached or went away: the command exits with
/// [`Exit::NodeUnavailable`]. The message says what happened and how to go on, in one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NodeUnavailable(pub String);

/// The exit code for a command that failed with `error`.
pub fn of_error(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if cause.is::<UnusableFile>() {
            return Exit::Unusable;
        }
        if cause.is::<NodeUnavailable>() || cause.is::<crate::present::NodeWentAway>() {
            return Exit::NodeUnavailable;
        }
    }
    Exit::Refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_follows_the_cause() {
        let unusable = anyhow::Error::new(UnusableFile("x".into())).context("reading");
        assert_eq!(of_error(&unusable), Exit::Unusable);
        let gone = anyhow::Error::new(NodeUnavailable("x".into()));
        assert_eq!(of_error(&gone), Exit::NodeUnavailable);
        assert_eq!(of_error(&anyhow::anyhow!("refused")), Exit::Refused);
    }
}
