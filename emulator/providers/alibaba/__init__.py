"""Alibaba Cloud Content Moderation (Green, API 2018-05-09, ROA style, JSON)."""
