"""What the test tiers share: constants, the curated contract, sample events."""
