//! The no-echo rule: nothing personal leaves in a refusal.
//!
//! A status message, an error detail or an audit reason may quote a request value only after
//! that value validated as a non-personal identifier: a county or township code in the national
//! list, an agreement this node holds, a hash, a UUID, a vocabulary name. Everything else is
//! described, not quoted ("the birth date is not a calendar date", "check character does not
//! match"); the typed errors of the domain are worded that way.
//!
//! [`without_id_numbers`] is the last line of that rule, applied where refusals leave: by the
//! one error → status mapping (`crate::status`) and by every audit write. Whatever wording slips
//! through, a run of digits as long as an ID number (15 digits for the legacy form, 17 and a
//! check character for today's) never reaches a peer, a caller or the audit log. It also
//! applies where a peer's words come in (`crate::domain::delivery`): a refusal reason or a
//! failed call's status is kept (an inquiry's refusal reason, the outbox's last error, the log)
//! only with such runs withheld, whatever the peer sent.

use std::borrow::Cow;

/// What stands in for a withheld number.
pub const WITHHELD: &str = "[withheld]";

/// The shortest run of digits treated as an ID number: the legacy 15-digit form, less one so
/// that a number cut by one character is withheld too.
const ID_DIGITS: usize = 14;

/// Whether `c` is a digit as a person would type one (ASCII or full-width).
fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

/// The byte ranges of the runs of `text` that look like ID numbers: at least [`ID_DIGITS`]
/// digits in a row, with a check character `X` that follows them.
fn id_number_runs(text: &str) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !is_digit(c) {
            continue;
        }
        let mut digits = 1;
        let mut end = start + c.len_utf8();
        while let Some(&(at, next)) = chars.peek() {
            if !is_digit(next) {
                break;
            }
            digits += 1;
            end = at + next.len_utf8();
            chars.next();
        }
        if digits >= ID_DIGITS {
            if let Some(&(at, check)) = chars.peek()
                && matches!(check, 'X' | 'x' | 'Ｘ' | 'ｘ')
            {
                end = at + check.len_utf8();
                chars.next();
            }
            runs.push((start, end));
        }
    }
    runs
}

/// Whether `text` holds anything that looks like an ID number.
pub fn holds_id_number(text: &str) -> bool {
    !id_number_runs(text).is_empty()
}

/// `text` with every run that looks like an ID number replaced by [`WITHHELD`]; borrowed
/// unchanged when there is none (the usual case).
pub fn without_id_numbers(text: &str) -> Cow<'_, str> {
    let runs = id_number_runs(text);
    if runs.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for (start, end) in runs {
        out.push_str(&text[from..start]);
        out.push_str(WITHHELD);
        from = end;
    }
    out.push_str(&text[from..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_number_anywhere_is_withheld() {
        assert_eq!(
            without_id_numbers("no agreement 43132219890230004X is held by 431322"),
            "no agreement [withheld] is held by 431322"
        );
        assert_eq!(
            without_id_numbers("fields.431322198902300042: unknown"),
            "fields.[withheld]: unknown"
        );
        assert_eq!(
            without_id_numbers("legacy 431322890230004 given"),
            "legacy [withheld] given"
        );
        assert_eq!(
            without_id_numbers("４３１３２２１９８９０２３０００４Ｘ"),
            WITHHELD
        );
    }

    #[test]
    fn identifiers_that_may_be_quoted_are_left_alone() {
        for text in [
            "agreement 430703-431322: the message names version 1 (3f2a9c01d4e5), this node holds version 2",
            "inquiry 0193a8f2-7c4e-7d21-9b3a-123456789012 is answered, not pending",
            "township 430703101 does not belong to county 431322",
            "daily cap of 20000 inquiries under the agreement is reached",
            "received 2026-12-01T13:42:08Z",
        ] {
            assert_eq!(without_id_numbers(text), text);
            assert!(!holds_id_number(text), "{text}");
        }
    }
}
