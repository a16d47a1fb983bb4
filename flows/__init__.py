"""Portal knowledge: the portal profile and one page object per portal page."""
