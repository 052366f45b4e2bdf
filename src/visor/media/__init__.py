"""Decoding images safely, reading their headers, and making thumbnails."""
