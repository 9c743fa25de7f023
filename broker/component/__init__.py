"""What every long-running ketenbus process stands on: its health and the watch that notices a
broker restart (``health``), bounded retries (``retry``), the process counters and their metrics
endpoint (``metrics``), and the one Kafka component lifecycle (``lifecycle``) that the router and
every adapter share. It knows neither the router nor any adapter: they import it, never the
other way round."""
