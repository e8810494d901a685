"""Plugin package: importing it registers its members."""
