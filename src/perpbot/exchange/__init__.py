"""perpbot.exchange"""
