"""Walks the running server with the OASIS TAXII client and validates every object.

Accepted stix2-validator warnings (not errors, so `is_valid` stays true):
  103 - indicator ids are UUIDv5 (deterministic per address, by design), disabled below;
  401 - every custom property (x_*) is reported as custom content;
  302/303 may appear for optional best-practice properties.
"""

import os

import pytest
import requests
import stix2
from stix2patterns.validator import run_validator
from stix2validator import ValidationOptions, validate_instance
from taxii2client.v21 import Server, as_pages

URL = os.environ["TAXII_URL"]
KEY = os.environ["TAXII_KEY"]
OPTIONS = ValidationOptions(version="2.1", disabled=["103"])


@pytest.fixture(scope="module")
def collections():
    server = Server(URL, user="interop", password=KEY)
    root = server.api_roots[0]
    found = {c.alias: c for c in root.collections}
    assert set(found) == {"ioc-indicators", "high-confidence-iocs"}
    return found


def manifest_ids(collection):
    ids = []
    for page in as_pages(collection.get_manifest, per_request=1000):
        ids.extend(record["id"] for record in page.get("objects", []))
    assert len(ids) == len(set(ids))
    return ids


def walk(collection, per_request):
    objects = []
    for page in as_pages(collection.get_objects, per_request=per_request):
        batch = page.get("objects", [])
        assert len(batch) <= per_request
        objects.extend(batch)
    return objects


@pytest.mark.parametrize("alias", ["ioc-indicators", "high-confidence-iocs"])
@pytest.mark.parametrize("per_request", [1000, 250])
def test_pages_deliver_every_object_once(collections, alias, per_request):
    collection = collections[alias]
    objects = walk(collection, per_request)
    ids = [o["id"] for o in objects]
    assert len(ids) == len(set(ids)), "no duplicates across pages"
    assert ids == manifest_ids(collection), "same set, same order as the manifest"
    assert any(o["type"] == "identity" for o in objects)
    assert any(o["type"] == "marking-definition" for o in objects)


def test_several_thousand_indicators(collections):
    assert len(manifest_ids(collections["ioc-indicators"])) > 2500


@pytest.mark.parametrize("alias", ["ioc-indicators", "high-confidence-iocs"])
def test_every_object_validates_and_parses(collections, alias):
    for obj in walk(collections[alias], 1000):
        result = validate_instance(obj, OPTIONS)
        assert result.is_valid, (obj["id"], [str(e) for e in result.errors])
        if obj["type"] == "indicator":
            assert run_validator(obj["pattern"], stix_version="2.1") == []
        stix2.parse(obj, allow_custom=True)


def test_object_and_versions(collections):
    collection = collections["ioc-indicators"]
    first = collection.get_objects(limit=5)["objects"][-1]
    envelope = collection.get_object(first["id"])
    assert envelope["objects"] == [first]
    versions = collection.object_versions(first["id"])
    assert versions["versions"] == [first.get("modified", first.get("created"))]


def test_headers_and_empty_page():
    url = URL + "iocs/collections/ioc-indicators/objects/"
    headers = {"Authorization": f"Bearer {KEY}", "Accept": "application/taxii+json;version=2.1"}
    response = requests.get(url, headers=headers, params={"limit": 10})
    last = response.headers["X-TAXII-Date-Added-Last"]
    assert len(last) == 27 and last.endswith("Z")
    everything = requests.get(url, headers=headers, params={"limit": 10000}).json()
    newest = requests.get(url, headers=headers, params={"limit": 10000})
    end = newest.headers["X-TAXII-Date-Added-Last"]
    empty = requests.get(url, headers=headers, params={"added_after": end})
    assert empty.status_code == 200
    assert empty.json() == {"more": False}
    assert empty.headers["X-TAXII-Date-Added-First"] == end
    assert empty.headers["X-TAXII-Date-Added-Last"] == end
    assert len(everything["objects"]) > 10
