"""placeholder: under construction"""
