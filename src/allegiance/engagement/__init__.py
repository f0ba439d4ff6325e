"""Engagement: quizzes, polls, surveys and NPS (docs/engagement.md)."""
