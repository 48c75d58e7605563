"""What a deployment costs: event counting, energy on hardware profiles, core mapping, latency, NeuroBench
metrics, the graph profile and the HTML report. See docs/ARCHITECTURE.md.
"""
