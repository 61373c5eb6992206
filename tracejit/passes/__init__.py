"""IR -> IR passes. Each is a pure Graph -> Graph function; ``pipeline`` runs them in order."""
