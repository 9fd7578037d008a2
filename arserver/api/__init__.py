"""HTTP routers, one module per resource: parse, authorise, call a service, serialise."""
