"""REST request analysis: method, path template, query, headers and JSON body -> facts."""
