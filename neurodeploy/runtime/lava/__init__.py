"""runtime/lava"""
