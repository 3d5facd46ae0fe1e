"""Every ``eval`` command and its report, and the bench."""
