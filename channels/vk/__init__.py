"""The VK community-messages channel: settings, pure event/reply translation, a thin API client, the I/O class."""

from channels.vk.channel import VkChannel
from channels.vk.events import action_of, check_event
from channels.vk.settings import InboxSettings, SettingsError, VkSettings, inbox_settings

__all__ = ["InboxSettings", "SettingsError", "VkChannel", "VkSettings", "action_of", "check_event", "inbox_settings"]
