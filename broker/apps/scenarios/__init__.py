"""Running ketenbus: the local stack behind ``ketenbus up``, its console and its scenarios."""
