"""What a run keeps on disk to survive a crash and to be undone: journal, backup ledger, locks."""
