package fakegce

import (
	"bytes"
	"encoding/json"
)

// mergePatch applies a JSON merge patch (RFC 7386) to the JSON form of cur and returns the
// merged document, plus the patch's "fingerprint" if it carries one.
func mergePatch(cur any, patch []byte) ([]byte, *string, *apiError) {
	var p map[string]any
	dec := json.NewDecoder(bytes.NewReader(patch))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, nil, errInvalid("Invalid JSON payload received. %v", err)
	}
	curJSON, err := json.Marshal(cur)
	if err != nil {
		return nil, nil, errInvalid("fakegce: cannot encode the current resource: %v", err)
	}
	var doc map[string]any
	dec = json.NewDecoder(bytes.NewReader(curJSON))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, errInvalid("fakegce: cannot decode the current resource: %v", err)
	}
	var fp *string
	if v, ok := p["fingerprint"].(string); ok {
		fp = &v
	}
	merged, err := json.Marshal(mergeInto(doc, p))
	if err != nil {
		return nil, nil, errInvalid("Invalid JSON payload received. %v", err)
	}
	return merged, fp, nil
}

// mergeInto merges patch into dst following RFC 7386 and returns dst.
func mergeInto(dst, patch map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(dst, k)
		case map[string]any:
			dm, _ := dst[k].(map[string]any)
			dst[k] = mergeInto(dm, pv)
		default:
			dst[k] = v
		}
	}
	return dst
}
