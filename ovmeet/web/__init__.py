"""The HTTP edge: Connexion plumbing (errors, cookie security, body checks) and cookies."""
