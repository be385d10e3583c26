"""The global preferences (security, webhooks, appearance), stored once and cached, and the
webhooks they send to the application. May import `support`, `storage` and `shared`."""
