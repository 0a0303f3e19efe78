"""Net promoter score surveys (issue 15): answers, categories and what they announce."""
