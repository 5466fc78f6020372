"""The pure trading domain: values, rules, aggregates and events. Standard library only."""
