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

/// A count as people read it: 20,000.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut text = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(20_000), "20,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn the_code_follows_the_cause() {
        let unusable = anyhow::Error::new(UnusableFile("x".into())).context("reading");
        assert_eq!(of_error(&unusable), Exit::Unusable);
        let gone = anyhow::Error::new(NodeUnavailable("x".into()));
        assert_eq!(of_error(&gone), Exit::NodeUnavailable);
        assert_eq!(of_error(&anyhow::anyhow!("refused")), Exit::Refused);
    }
}
