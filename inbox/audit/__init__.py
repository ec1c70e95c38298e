"""The audit log (reading it, sign-in entries) and the privacy retention timer; entries are written by
`inbox.store.audit.record` inside the transactions of the changes they describe."""
