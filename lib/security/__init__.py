"""Who may see what: roles and scopes, the users file, sessions and lockouts, the audit chain."""
