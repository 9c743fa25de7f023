"""What an operator does when something went wrong: follow a message end to end (``trace``) and
send a refused one through the router again once its cause is fixed (``reprocess``)."""
