"""inpainter"""
