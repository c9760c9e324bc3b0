"""Experiments that measure how well the rules predict maximal learning rates (the paper's §4 protocols).

Uses torch; imports no NNI.
"""
