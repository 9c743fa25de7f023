"""ketenbus router, policy, trust, audit and CLI."""
