"""Transparency to the customer: the acknowledgement of a new conversation (with the expected reply time in
business hours) and the customer portal (sign-in by emailed link, the customer's conversations, replies and
surveys). Policy only: every write of conversation data goes through `inbox.service` (`PortalWrites`)."""
