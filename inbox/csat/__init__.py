"""Customer satisfaction surveys: when to send one, the answer's rules, the activity line. Reacts to
resolutions and writes through the service. May import the HTTP plumbing, the service and below.
"""
