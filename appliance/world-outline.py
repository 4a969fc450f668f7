"""Turns world-atlas land-110m.json (TopoJSON) into one SVG path, equirectangular."""
import json, sys

topo = json.load(open(sys.argv[1]))
sx, sy = topo["transform"]["scale"]
tx, ty = topo["transform"]["translate"]

def decode(arc):
    x = y = 0
    points = []
    for dx, dy in arc:
        x += dx
        y += dy
        points.append((x * sx + tx, y * sy + ty))
    return points

arcs = [decode(a) for a in topo["arcs"]]

def ring(indexes):
    points = []
    for i in indexes:
        part = arcs[i] if i >= 0 else arcs[~i][::-1]
        points.extend(part if not points else part[1:])
    return points

def polygons(geometry):
    if geometry["type"] == "Polygon":
        yield geometry["arcs"]
    elif geometry["type"] == "MultiPolygon":
        yield from geometry["arcs"]
    elif geometry["type"] == "GeometryCollection":
        for g in geometry["geometries"]:
            yield from polygons(g)

parts = []
for polygon in polygons(topo["objects"]["land"]):
    for r in polygon:
        pts, last = [], None
        for lon, lat in ring(r):
            p = (round(lon, 1), round(-lat, 1))
            if p != last:
                pts.append(p)
                last = p
        if len(pts) < 4:
            continue
        # A ring crossing the antimeridian is cut there instead of drawing a line across.
        path, prev = "", None
        for x, y in pts:
            jump = prev is None or abs(x - prev) > 180
            path += ("M" if jump else "L") + f"{x:g} {y:g}"
            prev = x
        parts.append(path + "Z")

print('<svg xmlns="http://www.w3.org/2000/svg" viewBox="-180 -90 360 180">')
print("<!-- Land outline from Natural Earth 1:110m (public domain), via the world-atlas 2.0.2")
print("     npm package (ISC licence, Copyright 2013-2019 Michael Bostock). -->")
print(f'<path id="land" d="{"".join(parts)}"/>')
print("</svg>")
