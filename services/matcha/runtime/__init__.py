"""The runtime every Matcha service stands on: settings, logs, errors, auth,
governance, tracing, the PostgreSQL store and the gRPC server bootstrap."""
