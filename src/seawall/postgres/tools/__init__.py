"""One typed wrapper per external PostgreSQL program (pgBackRest's rule):
nothing else in seawall calls ``subprocess`` for PostgreSQL tools."""
