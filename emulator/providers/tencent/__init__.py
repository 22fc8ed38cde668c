"""Tencent Cloud Infinite (CI) content moderation (XML)."""
