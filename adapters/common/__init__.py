"""What every adapter shares: the party's client side of trust (seal, verify, de-duplicate),
inbox folders, outbox folders and the dead-letter path for input that cannot be accepted."""
