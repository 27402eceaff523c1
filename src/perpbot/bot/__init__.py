"""perpbot.bot"""
