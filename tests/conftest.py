"""Test setup shared by all test files: keep TensorFlow's C++ logging quiet."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
