"""Source formats in: each adapter streams a file and yields canonical updates or bad records."""
