"""Team workflow: business hours (`hours`: calendars and their arithmetic); next, routing with capacity, SLA
clocks, automation rules and macros — reactors that learn from events and write only through the service.
A feature package: may import the HTTP plumbing, the gateway, the service and below.
"""
