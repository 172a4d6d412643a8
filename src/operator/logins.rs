//! The audit records of the web console's logins and logouts: written on the operator API's
//! one audit path ([`Caller`]), under the account's name and scope like every operator call,
//! so that the audit log tells who logged in and what they then did in one place.

use tonic::Status;

use super::OperatorService;
use super::access::Caller;
use crate::domain::policy::{OperatorAction, Principal, Rejection};

impl OperatorService {
    /// Records that `principal` logged in to the console (`ConsoleLogin`, `logged_in`) or out
    /// (`ConsoleLogout`, `logged_out`). `Err` (`INTERNAL`) when the record cannot be written:
    /// the caller must then not open the session.
    pub async fn audit_console(
        &self,
        principal: &Principal,
        action: OperatorAction,
        outcome: &str,
    ) -> Result<(), Status> {
        let caller = Caller {
            scope: principal.scope(),
            principal: principal.clone(),
            action,
        };
        caller.audit(&self.node, caller.access(outcome)).await
    }

    /// Records a refused login of the account `principal` (a wrong password, a lock, a disabled
    /// account): `refused`, with `rejection` as the reason.
    pub async fn refuse_console_login(&self, principal: &Principal, rejection: Rejection) {
        let caller = Caller {
            scope: principal.scope(),
            principal: principal.clone(),
            action: OperatorAction::ConsoleLogin,
        };
        let _ = caller.refuse(&self.node, rejection, None).await;
    }

    /// Records a refused login that names no usable account, as `unidentified` (the name
    /// typed is never recorded: it may be an ID number, or a password typed in the wrong
    /// field), limited per minute like every unidentified caller's refusal.
    pub async fn refuse_unidentified_login(&self, rejection: Rejection) {
        let _ = self
            .gate
            .refuse_unidentified(&self.node, OperatorAction::ConsoleLogin, &rejection)
            .await;
    }
}
