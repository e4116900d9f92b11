-- Login throttling counts recent failures per subject in the audit log; this index keeps that a range scan.
CREATE INDEX audit_log_subject_action ON audit_log(subject, action, at);
