"""Crystal graphs and structural descriptors of the AFLOW prototypes with the core only (no AiiDA).

Builds CGCNN-style graphs, batches them with torch-geometric, runs one CGConv layer on the batch, and
compares two structures by their averaged SOAP vectors.
"""

import numpy as np
import torch
from torch_geometric.data import Batch
from torch_geometric.nn import CGConv, global_mean_pool

from aiida_matembed.core.datasets import load_aflow_prototypes
from aiida_matembed.core.representations import get_representation

prototypes = [p for p in load_aflow_prototypes() if p.structure.is_ordered]
structures = [p.structure for p in prototypes[:64]]

graph = get_representation('matembed.crystal_graph')
result = graph.graphs_many(structures, errors='record')
batch = Batch.from_data_list([g for g in result.graphs if g is not None])
layer = CGConv(channels=batch.x.shape[1], dim=batch.edge_attr.shape[1])
pooled = global_mean_pool(layer(batch.x, batch.edge_index, batch.edge_attr), batch.batch)
print(f'{batch.num_graphs} graphs, {batch.num_nodes} atoms, {batch.edge_index.shape[1]} edges -> {tuple(pooled.shape)}')

soap = get_representation('matembed.soap', n_max=4, l_max=3).fit(structures)
vectors = soap.featurize_many(structures).features
unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
similarity = unit @ unit.T
i, j = np.unravel_index(np.argmax(similarity - 2 * np.eye(len(structures))), similarity.shape)
print(f'most similar pair by the SOAP kernel: {prototypes[i].label} / {prototypes[j].label} ({similarity[i, j]:.3f})')
assert torch.isfinite(pooled).all()
