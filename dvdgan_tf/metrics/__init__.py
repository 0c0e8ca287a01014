"""Evaluation metrics (FVD, FID, IS) and the networks they use."""
