package fakegce

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// Page tokens are opaque to clients; here they encode the last key of the previous page, so a
// page costs O(log n + page) and stays correct while the collection changes between pages.

const tokenVersion = "fg1|"

func encodeToken(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenVersion + strings.Join(parts, "\x00")))
}

func decodeToken(tok string, n int) ([]string, *apiError) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	s := string(b)
	if err != nil || !strings.HasPrefix(s, tokenVersion) {
		return nil, errInvalidField("pageToken", tok, "Invalid page token.")
	}
	parts := strings.Split(strings.TrimPrefix(s, tokenVersion), "\x00")
	if len(parts) != n {
		return nil, errInvalidField("pageToken", tok, "Invalid page token.")
	}
	return parts, nil
}

// pageByName returns one page of items, which are sorted by name.
func pageByName[T any](items []T, name func(T) string, p listParams) ([]T, string, *apiError) {
	start := 0
	if p.token != "" {
		parts, err := decodeToken(p.token, 1)
		if err != nil {
			return nil, "", err
		}
		start = sort.Search(len(items), func(i int) bool { return name(items[i]) > parts[0] })
	}
	end := min(start+p.max, len(items))
	next := ""
	if end < len(items) {
		next = encodeToken(name(items[end-1]))
	}
	return items[start:end], next, nil
}

// scoped is one item of an aggregated list: its scope key ("zones/us-central1-a") and name.
type scoped[T any] struct {
	scope, name string
	v           T
}

// pageScoped returns one page of an aggregated list; all is sorted by (scope, name).
func pageScoped[T any](all []scoped[T], p listParams) ([]scoped[T], string, *apiError) {
	start := 0
	if p.token != "" {
		parts, err := decodeToken(p.token, 2)
		if err != nil {
			return nil, "", err
		}
		start = sort.Search(len(all), func(i int) bool {
			return all[i].scope > parts[0] || (all[i].scope == parts[0] && all[i].name > parts[1])
		})
	}
	end := min(start+p.max, len(all))
	next := ""
	if end < len(all) {
		next = encodeToken(all[end-1].scope, all[end-1].name)
	}
	return all[start:end], next, nil
}

// noResultsMessage is the text of an aggregated list's NO_RESULTS_ON_PAGE warning.
func noResultsMessage(scope string) string {
	return fmt.Sprintf("There are no results for scope '%s' on this page.", scope)
}

// endpointToken encodes the last endpoint of a listNetworkEndpoints page: every field of its
// identity, so that endpoints differing only in their IPv6 address page exactly.
func endpointToken(e neg.Endpoint) string {
	return encodeToken(e.IP, strconv.FormatInt(e.Port, 10), e.Instance, e.IPv6)
}

func parseEndpointToken(tok string) (neg.Endpoint, *apiError) {
	parts, err := decodeToken(tok, 4)
	if err != nil {
		return neg.Endpoint{}, err
	}
	port, perr := strconv.ParseInt(parts[1], 10, 64)
	if perr != nil {
		return neg.Endpoint{}, errInvalidField("pageToken", tok, "Invalid page token.")
	}
	return neg.Endpoint{IP: parts[0], Port: port, Instance: parts[2], IPv6: parts[3]}, nil
}

// sortScoped sorts aggregated-list items by (scope, name).
func sortScoped[T any](items []scoped[T]) {
	sort.Slice(items, func(i, j int) bool {
		if items[i].scope != items[j].scope {
			return items[i].scope < items[j].scope
		}
		return items[i].name < items[j].name
	})
}
