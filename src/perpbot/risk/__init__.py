"""perpbot.risk"""
