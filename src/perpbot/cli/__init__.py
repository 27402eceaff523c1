"""perpbot.cli"""
